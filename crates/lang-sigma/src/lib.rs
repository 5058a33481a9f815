//! ruleatlas-lang-sigma (in progress).
