"""Password rules for trunk credentials (the seeds' rules): at least 12 characters with
digits, upper- and lower-case letters; a special character is recommended, not required."""

from __future__ import annotations

MIN_LENGTH = 12


def check_password(password: str) -> tuple[list[str], list[str]]:
    """(errors, warnings), each a sentence naming the rule."""
    errors: list[str] = []
    if len(password) < MIN_LENGTH:
        errors.append(f"password must be at least {MIN_LENGTH} characters long")
    if not any(c.isdigit() for c in password):
        errors.append("password must contain a digit")
    if not any(c.isupper() for c in password):
        errors.append("password must contain an upper-case letter")
    if not any(c.islower() for c in password):
        errors.append("password must contain a lower-case letter")
    warnings = []
    if all(c.isalnum() for c in password):
        warnings.append("password has no special character (such as !@#-_); adding one "
                        "makes it stronger")
    return errors, warnings
