"""modelreg.shared"""
