// probe reports what Go's runtime finds in the image it runs in: `probe roots` the number of
// system root certificates crypto/x509 loads, `probe tz` local time's zone and whether an
// explicit time.LoadLocation($TZ) works. It is a TLS client (crypto/tls), as services are.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe roots|tz")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "roots":
		_ = tls.Config{MinVersion: tls.VersionTLS12}
		pool, err := x509.SystemCertPool()
		if err != nil {
			fmt.Printf("roots=0 error=%v\n", err)
			return
		}
		fmt.Printf("roots=%d\n", len(pool.Subjects()))
	case "tz":
		name, _ := time.Now().Zone()
		fmt.Printf("local=%s zone=%s\n", time.Local.String(), name)
		if _, err := time.LoadLocation(os.Getenv("TZ")); err != nil {
			fmt.Printf("load=error %v\n", err)
		} else {
			fmt.Println("load=ok")
		}
	}
}
