"""The release-candidate report: figures (Plotly) and one self-contained HTML file per lot."""
