//! Stream Chat: the chat port (`callbridge_core::chat`: membership, announcements) and its
//! adapter, `stream::StreamChat`, on Stream Chat's REST API.

pub use callbridge_core::chat::*;

pub mod stream;
