//! ruleatlas-lang-kql (in progress).
