// Go peer for the beacon bench: net/http + client_golang, the same contract as
// `beacon serve`. Two durability modes, chosen with -commit:
//
//   - per-visit (the naive row, target `go`): every visit takes a mutex, increments
//     the counter, writes it with WriteAt and calls f.Sync() (fsync) before
//     answering; no batching.
//   - group (target `go-group-commit`): leader-based group commit over the same
//     file layout as beacon's store (8192 bytes, two 32-byte CRC'd slots in
//     separate blocks, written alternately). A visit takes a ticket; if no sync is
//     running it becomes the leader and makes one WriteAt + fdatasync that covers
//     every ticket taken so far; otherwise it waits, and the next leader covers
//     every visit that arrived while the previous sync ran.
//
// Built offline in GOPATH mode from Debian's packages (see bench/targets.py).
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type store interface {
	// record counts one visit and returns the count including it, once it is on disk.
	record() (uint64, error)
	get() uint64
}

// perVisit: one fsync per visit behind a mutex.
type perVisit struct {
	mu    sync.Mutex
	f     *os.File
	count uint64
}

func openPerVisit(dir string) (*perVisit, error) {
	f, err := os.OpenFile(filepath.Join(dir, "visits"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 8)
	n, _ := f.ReadAt(buf, 0)
	s := &perVisit{f: f}
	if n == 8 {
		s.count = binary.LittleEndian.Uint64(buf)
	}
	return s, nil
}

func (s *perVisit) record() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf := make([]byte, 8)
	binary.LittleEndian.PutUint64(buf, s.count+1)
	if _, err := s.f.WriteAt(buf, 0); err != nil {
		return 0, err
	}
	if err := s.f.Sync(); err != nil {
		return 0, err
	}
	s.count++
	return s.count, nil
}

func (s *perVisit) get() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// groupCommit: the file layout of beacon's store, so both make the same write and sync.
const (
	fileLen = 8192
	slotLen = 32
)

var (
	magic       = []byte("BCNVIS01")
	slotOffsets = [2]int64{0, 4096}
	errCommit   = errors.New("commit failed")
)

type groupCommit struct {
	mu         sync.Mutex
	cond       *sync.Cond
	f          *os.File
	fd         int
	generation uint64
	requested  uint64 // tickets handed out: the count including every visit in flight
	durable    uint64 // the count the last successful sync made durable
	syncing    bool   // a leader is writing and syncing (outside the mutex)
	failedLo   uint64 // tickets in (failedLo, failedHi] belong to a failed sync
	failedHi   uint64
	buf        [slotLen]byte
}

func encodeSlot(buf []byte, generation, count uint64) {
	copy(buf[0:8], magic)
	binary.LittleEndian.PutUint64(buf[8:16], generation)
	binary.LittleEndian.PutUint64(buf[16:24], count)
	binary.LittleEndian.PutUint32(buf[24:28], crc32.ChecksumIEEE(buf[0:24]))
	for i := 28; i < slotLen; i++ {
		buf[i] = 0
	}
}

func openGroupCommit(dir string) (*groupCommit, error) {
	path := filepath.Join(dir, "visits.db")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	s := &groupCommit{f: f}
	s.cond = sync.NewCond(&s.mu)
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() == 0 {
		if err := f.Truncate(fileLen); err != nil {
			return nil, err
		}
		encodeSlot(s.buf[:], 0, 0)
		if _, err := f.WriteAt(s.buf[:], slotOffsets[0]); err != nil {
			return nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
	}
	for i, off := range slotOffsets {
		var b [slotLen]byte
		if _, err := f.ReadAt(b[:], off); err != nil {
			return nil, err
		}
		if string(b[0:8]) != string(magic) || binary.LittleEndian.Uint32(b[24:28]) != crc32.ChecksumIEEE(b[0:24]) {
			continue
		}
		gen := binary.LittleEndian.Uint64(b[8:16])
		if int(gen%2) == i && (gen >= s.generation) {
			s.generation, s.durable = gen, binary.LittleEndian.Uint64(b[16:24])
		}
	}
	s.requested = s.durable
	// Fd() once here: it switches the file to blocking mode, which is what a regular file is anyway.
	s.fd = int(f.Fd())
	return s, nil
}

func (s *groupCommit) record() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requested++
	ticket := s.requested
	for s.durable < ticket {
		if s.failedLo < ticket && ticket <= s.failedHi {
			return 0, errCommit
		}
		if s.syncing {
			s.cond.Wait()
			continue
		}
		// Leader: one write + fdatasync for every ticket handed out so far.
		s.syncing = true
		target, gen := s.requested, s.generation+1
		encodeSlot(s.buf[:], gen, target)
		s.mu.Unlock()
		_, err := s.f.WriteAt(s.buf[:], slotOffsets[gen%2])
		if err == nil {
			err = syscall.Fdatasync(s.fd)
		}
		s.mu.Lock()
		s.syncing = false
		if err == nil {
			s.generation, s.durable = gen, target
		} else {
			log.Printf("visits store commit failed: %v", err)
			s.failedLo, s.failedHi = s.durable, target
		}
		s.cond.Broadcast()
	}
	return ticket, nil
}

func (s *groupCommit) get() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.durable
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	dataDir := flag.String("data-dir", "data", "directory of the visits file")
	commit := flag.String("commit", "per-visit", "durability: per-visit (fsync per visit) or group (group commit, fdatasync)")
	flag.Parse()

	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		log.Fatal(err)
	}
	var st store
	var err error
	switch *commit {
	case "per-visit":
		st, err = openPerVisit(*dataDir)
	case "group":
		st, err = openGroupCommit(*dataDir)
	default:
		err = fmt.Errorf("unknown -commit %q", *commit)
	}
	if err != nil {
		log.Fatal(err)
	}
	// The bench reads this line: Go 1.19 sets GOMAXPROCS from the host's cores, not a CPU quota.
	log.Printf("commit=%s gomaxprocs=%d numcpu=%d", *commit, runtime.GOMAXPROCS(0), runtime.NumCPU())
	visits := promauto.NewCounter(prometheus.CounterOpts{Name: "peer_visits_total", Help: "Visits recorded durably."})
	requests := promauto.NewCounterVec(prometheus.CounterOpts{Name: "peer_http_requests_total", Help: "HTTP requests."}, []string{"code"})

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		n, err := st.record()
		if err != nil {
			http.Error(w, "store failed", http.StatusServiceUnavailable)
			return
		}
		visits.Inc()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><html><body><h1>go peer</h1><p>visits: <strong id=\"visits\">%d</strong></p></body></html>\n", n)
	})
	mux.HandleFunc("/visits", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"visits\":%s}\n", strconv.FormatUint(st.get(), 10))
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.Handle("/metrics", promhttp.Handler())

	log.Fatal(http.ListenAndServe(*listen, promhttp.InstrumentHandlerCounter(requests, mux)))
}
