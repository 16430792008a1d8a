"""Tests of the book (book/, _config.yml, _toc.yml); a package, so that its conftest does not
shadow tests/conftest.py (both would otherwise be imported as `conftest`)."""
