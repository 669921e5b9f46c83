//! A TCP relay in front of a server: stopping it is an outage for the clients that go through it
//! (refused connections, kept connections closed), starting it again on the same port ends it.

#![allow(dead_code)] // each test file uses part of it

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

pub struct Relay {
    pub port: u16,
    target: String,
    running: Option<Running>,
}

/// A listening relay: its stop flag, the connections it relays, its accepting thread.
struct Running(Arc<AtomicBool>, Arc<Mutex<Vec<TcpStream>>>, thread::JoinHandle<()>);

impl Relay {
    /// A relay to `target` (host:port) on a free port of 127.0.0.1, listening.
    pub fn start(target: &str) -> Relay {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut r = Relay { port, target: target.to_string(), running: None };
        r.resume();
        r
    }

    /// Listens again on the same port.
    pub fn resume(&mut self) {
        assert!(self.running.is_none(), "the relay is running");
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (target, stop2, open2) = (self.target.clone(), stop.clone(), open.clone());
        let accept = thread::spawn(move || {
            while !stop2.load(SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let Ok(upstream) = TcpStream::connect(&target) else { continue };
                client.set_nonblocking(false).unwrap();
                let mut sockets = open2.lock().unwrap();
                for (from, to) in [(&client, &upstream), (&upstream, &client)] {
                    let (mut from, mut to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
                sockets.extend([client, upstream]);
            }
        });
        self.running = Some(Running(stop, open, accept));
    }

    /// Stops listening and closes every relayed connection.
    pub fn stop(&mut self) {
        if let Some(Running(stop, open, accept)) = self.running.take() {
            stop.store(true, SeqCst);
            accept.join().unwrap();
            for s in open.lock().unwrap().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}
