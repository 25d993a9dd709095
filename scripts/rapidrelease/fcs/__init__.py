"""Reading FCS files: every version and datatype real instruments write, with their quirks."""
