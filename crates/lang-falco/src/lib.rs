//! ruleatlas-lang-falco (in progress).
