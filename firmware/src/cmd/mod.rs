pub mod audit;
pub mod demo;
pub mod devices;
pub mod enroll;
pub mod hub;
pub mod init;
pub mod terminal;
pub mod user;
