"""Figures the container tests measure (image size, build, start and drain
times, request counts), printed at the end of the session by conftest.py and
written as JSON to $FUSION_CONTAINER_FIGURES when set. Tests assert
behaviour with generous bounds; the exact figures are reported here."""
FIGURES = {}


def figure(key, value):
    FIGURES[key] = value
