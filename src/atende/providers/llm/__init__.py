"""Language models: one interface (base.py), one small adapter per vendor dialect."""
