//! ATT&CK tactics live in the IR crate (the webhook's ECS alerts name them too).

pub use ruleatlas_ir::attack::*;
