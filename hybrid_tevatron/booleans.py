"""The one spelling of a yes/no setting written as text (an environment variable, a settings file's string):
``1 true yes on`` and ``0 false no off``, in any case."""

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def parse_bool(text: str) -> bool | None:
    """True or False for a word of :data:`TRUE_WORDS` or :data:`FALSE_WORDS` (any case); None for anything else
    (the caller says what it expected)."""
    word = text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None
