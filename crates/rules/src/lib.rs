//! ruleatlas-rules (in progress).
