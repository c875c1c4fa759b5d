// A small HTTP service, the kind drydock exists for. Built with CGO_ENABLED=0 it is static;
// it makes outbound TLS calls (crypto/tls) when asked to, so it needs a CA bundle.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "fetch" {
		resp, err := http.Get(os.Args[2])
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(resp.Status)
		return
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello at %s\n", time.Now().Format(time.RFC3339))
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
