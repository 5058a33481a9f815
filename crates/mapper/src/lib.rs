//! ruleatlas-mapper (in progress).
