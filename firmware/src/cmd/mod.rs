pub mod audit;
pub mod demo;
pub mod init;
pub mod user;
