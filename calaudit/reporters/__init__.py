"""Reporters: each renders an :class:`calaudit.AuditResult` and computes nothing.

Every reporter module exposes ``render(result) -> str``.
"""
