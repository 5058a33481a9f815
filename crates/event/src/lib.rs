//! ruleatlas-event (in progress).
