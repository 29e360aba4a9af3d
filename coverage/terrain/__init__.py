"""Terrain and land cover: sources read by window, the per-site sweep, clutter class tables."""
