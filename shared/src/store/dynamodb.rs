//! DynamoDB adapter (issue 3).
