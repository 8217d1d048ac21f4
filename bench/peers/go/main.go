// Go peer for the beacon bench: net/http + client_golang, the same contract as
// `beacon serve`. Durability: every visit takes a mutex, increments the counter,
// writes it with WriteAt and calls f.Sync() (fsync) before answering; no batching.
//
// Built offline in GOPATH mode from Debian's packages (see bench/targets.py).
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type store struct {
	mu    sync.Mutex
	f     *os.File
	count uint64
}

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "visits"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 8)
	n, _ := f.ReadAt(buf, 0)
	s := &store{f: f}
	if n == 8 {
		s.count = binary.LittleEndian.Uint64(buf)
	}
	return s, nil
}

// record counts one visit and returns only once it is on disk.
func (s *store) record() (uint64, error) {
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

func (s *store) get() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	dataDir := flag.String("data-dir", "data", "directory of the visits file")
	flag.Parse()

	st, err := openStore(*dataDir)
	if err != nil {
		log.Fatal(err)
	}
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
