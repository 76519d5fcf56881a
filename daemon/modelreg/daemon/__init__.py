"""modelreg.daemon"""
