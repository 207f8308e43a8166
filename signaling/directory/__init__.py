"""Tenants, users, licences and App objects as the hub sees them."""

from .accounts import HubAccounts
from .directory import Directory, Tenant

__all__ = ["Directory", "HubAccounts", "Tenant"]
