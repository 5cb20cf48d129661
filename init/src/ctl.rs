//! `initctl`: the client (placeholder until the control helper lands it).

pub fn main(_args: &[String]) -> u8 {
    2
}
