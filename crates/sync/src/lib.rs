//! ruleatlas-sync (in progress).
