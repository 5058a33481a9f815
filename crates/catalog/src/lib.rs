//! ruleatlas-catalog (in progress).
