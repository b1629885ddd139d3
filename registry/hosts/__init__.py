"""Proving that an organisation controls a web host, without touching the database.

`names` turns what a person typed into the host form Kyoka stores (the same form URL
registrations have) and refuses what no one may claim: public suffixes, IP literals, names
that are not host names. `proof` looks for the proof on the network (a DNS TXT record, a
file served over HTTPS), treating every answer from outside as hostile.
"""
