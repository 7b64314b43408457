"""Renderings of graphs and runs for people: DOT/SVG pictures."""
