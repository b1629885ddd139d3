"""The test suite's settings (pyproject's DJANGO_SETTINGS_MODULE): portal/settings/test.py."""

from portal.settings.test import *  # noqa: F403
