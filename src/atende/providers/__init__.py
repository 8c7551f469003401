"""Speech and language providers, one small adapter per engine behind one interface per kind."""
