"""Seedbed wire contracts."""
