//! PID 1's event loop (being written by the lead).

pub fn run() -> ! {
    loop {
        std::thread::park();
    }
}
