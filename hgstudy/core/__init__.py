"""Basics every room uses: the user-facing error, typed settings, atomic files, crop geometry, joint sets."""
