"""Small programs that hang the way real Python programs do (and some that do not).

Each one takes a path on its command line, writes "ready" there once the hang
(or the healthy steady state) is in place, and then stays that way until
killed.  The integration tests and `threaddoc demo` run these very files.
"""
