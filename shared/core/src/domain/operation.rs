//! The operations Callbridge serves: what every answer, log line and metric is about.

use std::fmt;

/// An operation; Stream names it in every error message (`"<Op> failed with error: ..."`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    CreateCall,
    GetCallToken,
    EndCall,
    /// A provider's event notification (100ms webhook, Agora NCS).
    ProviderEvent,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateCall => "CreateCall",
            Operation::GetCallToken => "GetCallToken",
            Operation::EndCall => "EndCall",
            Operation::ProviderEvent => "ProviderEvent",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
