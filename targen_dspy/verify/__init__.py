"""Checking generated instances (DataGen's truthfulness checks): running model-written code in a sandbox,
and retrieving passages from the user's own documents to judge an instance's facts against."""
