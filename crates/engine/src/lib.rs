//! ruleatlas-engine (in progress).
