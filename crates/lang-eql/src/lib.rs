//! ruleatlas-lang-eql (in progress).
