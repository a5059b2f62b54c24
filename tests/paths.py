"""Where the suite is: the tests folder (on sys.path, through conftest.py, so subprocess scripts that
import the helpers need it on PYTHONPATH too) and the project root."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
PROJECT_ROOT = TESTS.parent
