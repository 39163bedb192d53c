"""Accounts: who is logging in and from where, and the throttle that stops password guessing."""
