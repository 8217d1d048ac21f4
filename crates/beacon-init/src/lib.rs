//! Init-container steps (`beacon init …`). Implemented in a later change.
