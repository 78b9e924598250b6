//go:build linux

package api

import (
	"hash"
	"io"
	"sync"

	"github.com/bulwark-appliance/bulwark/transfer/store"
)

const (
	chunk = 1 << 20
	// ring is how many chunks one upload may hold: the four consumers
	// (clamd, the blob, the file hash, the piece hashes) run up to this far
	// apart, so a stall in one (a disk write, a clamd read)
	// does not stop the others. Memory is ring MiB per upload.
	ring = 8
)

// pumped is what pump did: bytes read and the first error of each part.
type pumped struct {
	n                         int64
	readErr, blobErr, scanErr error
}

// pump reads body into a ring of chunks and hands every chunk to clamd, the
// blob and the hash, each fed by its own goroutine: the three run in
// parallel, clamd's verdict waits on none of the others, and a chunk is
// reused only once all three are done with it. The first failure stops the
// reading.
func pump(body io.Reader, blob io.Writer, sum hash.Hash, stream io.Writer, pieces *store.ChunkSums) pumped {
	stop := make(chan struct{})
	var once sync.Once
	halt := func() { once.Do(func() { close(stop) }) }
	sinks := []*sink{startSink(stream, halt), startSink(blob, halt), startSink(sum, halt), startSink(pieces, halt)}
	bufs := make([][]byte, ring)
	var p pumped
	for i := 0; ; i++ {
		if i >= ring { // the chunk about to be reused must be free
			for _, s := range sinks {
				<-s.done
			}
		}
		if bufs[i%ring] == nil {
			bufs[i%ring] = store.NewBlobBuffer(chunk) // aligned: the blob bypasses the page cache
		}
		if !p.read(body, bufs[i%ring], sinks, stop) {
			break
		}
	}
	for _, s := range sinks {
		s.wait()
	}
	p.scanErr, p.blobErr = sinks[0].err, sinks[1].err
	return p
}

// read fills buf from body and hands what it got to the sinks; false when
// the body has ended or reading must stop.
func (p *pumped) read(body io.Reader, buf []byte, sinks []*sink, stop <-chan struct{}) bool {
	select {
	case <-stop:
		return false
	default:
	}
	k, err := io.ReadFull(body, buf)
	if k > 0 {
		p.n += int64(k)
		for _, s := range sinks {
			s.in <- buf[:k]
		}
	}
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		p.readErr = err
	}
	return err == nil
}

// sink writes the chunks it is given, in order, in its own goroutine, and
// reports each one done. After an error it only reports: the data is of no
// use any more, but the chunks must still come free.
type sink struct {
	in   chan []byte
	done chan struct{}
	end  chan struct{}
	err  error // read only after end is closed
}

func startSink(w io.Writer, halt func()) *sink {
	s := &sink{in: make(chan []byte, ring), done: make(chan struct{}, ring), end: make(chan struct{})}
	go func() {
		defer close(s.end)
		for b := range s.in {
			if s.err == nil {
				if _, s.err = w.Write(b); s.err != nil {
					halt()
				}
			}
			s.done <- struct{}{}
		}
	}()
	return s
}

// wait closes the sink's input and waits until it has written everything.
// done never blocks the goroutine: it holds ring tokens and pump takes one
// before handing over each chunk past the first ring.
func (s *sink) wait() {
	close(s.in)
	<-s.end
}
