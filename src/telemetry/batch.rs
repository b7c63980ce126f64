//! Log lines written in batches: one `write` system call per burst of requests instead of one per
//! line (docs/performance.md).
//!
//! A runtime worker appends its lines to one shared buffer. The buffer goes to stdout when a worker
//! runs out of work (tokio's `on_thread_park`, see [`worker_idle`]), when it passes
//! [`BATCH_BYTES`], and when a worker stops. Any other thread (the main thread, tokio's blocking
//! pool) writes at once, after what is buffered, so lines keep their order. An idle service
//! therefore writes each line at once; a busy one holds a line until its worker next runs out of
//! work, or the buffer fills.

use std::cell::Cell;
use std::io::{self, Write};
use std::sync::{Mutex, MutexGuard};

use tracing_subscriber::fmt::MakeWriter;

/// Buffered bytes beyond which the buffer is written at once.
const BATCH_BYTES: usize = 16 * 1024;

thread_local! {
    /// Whether this thread is a runtime worker, known from its first park.
    static WORKER: Cell<bool> = const { Cell::new(false) };
}

/// Whole lines waiting for `sink`.
struct Batch {
    buffer: Mutex<Vec<u8>>,
    sink: fn(&[u8]),
}

impl Batch {
    const fn new(sink: fn(&[u8])) -> Self {
        Self {
            buffer: Mutex::new(Vec::new()),
            sink,
        }
    }

    fn line(&self, line: &[u8]) {
        let mut buffer = self.buffer();
        buffer.extend_from_slice(line);
        if !WORKER.get() || buffer.len() >= BATCH_BYTES {
            self.write_out(&mut buffer);
        }
    }

    fn flush(&self) {
        self.write_out(&mut self.buffer());
    }

    fn buffer(&self) -> MutexGuard<'_, Vec<u8>> {
        // A thread that panicked while holding the lock left whole lines behind: keep them.
        self.buffer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_out(&self, buffer: &mut Vec<u8>) {
        if !buffer.is_empty() {
            (self.sink)(buffer);
            buffer.clear();
        }
    }
}

static STDOUT: Batch = Batch::new(|bytes| {
    // Nowhere to report a failed log write; tracing's own stdout writer drops it too.
    let _ = io::stdout().lock().write_all(bytes);
});

/// For tokio's `on_thread_park`: marks the thread as a worker and writes what is buffered.
pub fn worker_idle() {
    WORKER.set(true);
    flush();
}

/// Writes what is buffered to stdout.
pub fn flush() {
    STDOUT.flush();
}

/// The writer the subscriber formats into; it writes each event as one `write` of a whole line.
pub struct BatchedStdout;

impl MakeWriter<'_> for BatchedStdout {
    type Writer = BatchedStdout;

    fn make_writer(&self) -> Self::Writer {
        BatchedStdout
    }
}

impl Write for BatchedStdout {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        STDOUT.line(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static WRITTEN: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    static CAPTURED: Batch = Batch::new(|bytes| WRITTEN.lock().unwrap().push(bytes.to_vec()));

    fn written() -> Vec<String> {
        let writes = std::mem::take(&mut *WRITTEN.lock().unwrap());
        writes
            .into_iter()
            .map(|w| String::from_utf8(w).unwrap())
            .collect()
    }

    // One test, so that no other test writes to CAPTURED meanwhile.
    #[test]
    fn workers_batch_until_idle_or_full_and_other_threads_keep_the_order() {
        // Not a worker yet: every line is written at once.
        CAPTURED.line(b"a\n");
        CAPTURED.line(b"b\n");
        assert_eq!(written(), ["a\n", "b\n"]);

        std::thread::spawn(|| {
            WORKER.set(true);
            CAPTURED.line(b"c\n");
            CAPTURED.line(b"d\n");
        })
        .join()
        .unwrap();
        assert_eq!(written(), Vec::<String>::new(), "a worker's lines wait");

        // Another thread's line goes out after the worker's, in one write.
        CAPTURED.line(b"e\n");
        assert_eq!(written(), ["c\nd\ne\n"]);

        // A worker going idle writes what waits; nothing is written twice or when empty.
        std::thread::spawn(|| {
            WORKER.set(true);
            CAPTURED.line(b"f\n");
            CAPTURED.flush();
            CAPTURED.flush();
        })
        .join()
        .unwrap();
        assert_eq!(written(), ["f\n"]);

        // A full buffer is written by the worker itself.
        let line = [b'x'; 1023]
            .iter()
            .chain(b"\n")
            .copied()
            .collect::<Vec<u8>>();
        std::thread::spawn(move || {
            WORKER.set(true);
            for _ in 0..BATCH_BYTES / line.len() + 1 {
                CAPTURED.line(&line);
            }
        })
        .join()
        .unwrap();
        let writes = written();
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].len(), BATCH_BYTES);
        CAPTURED.flush();
        assert_eq!(written()[0].len(), 1024);
    }
}
