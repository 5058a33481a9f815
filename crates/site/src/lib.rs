//! ruleatlas-site (in progress).
