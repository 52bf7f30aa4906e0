from tests.support.promotion import server, template

__all__ = ["server", "template"]
