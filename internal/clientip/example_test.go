package clientip_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/sessionkit/sessionkit/internal/clientip"
)

func Example() {
	// The app runs behind a load balancer in 10.0.0.0/8.
	r, err := clientip.New([]string{"10.0.0.0/8"})
	if err != nil {
		panic(err)
	}

	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "10.0.0.1:443"
	// The client sent "X-Forwarded-For: 6.6.6.6"; the balancer appended
	// the address it saw.
	req.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.7")
	ip, _ := r.ClientIP(req)
	fmt.Println(ip)

	// A client that connects directly cannot choose its address.
	req.RemoteAddr = "198.51.100.9:5555"
	ip, _ = r.ClientIP(req)
	fmt.Println(ip)
	// Output:
	// 203.0.113.7
	// 198.51.100.9
}

func ExampleParse() {
	for _, s := range []string{"[::ffff:192.0.2.1]:443", "fe80::1%eth0", "unknown"} {
		ip, ok := clientip.Parse(s)
		fmt.Println(ip, ok)
	}
	// Output:
	// 192.0.2.1 true
	// fe80::1 true
	// invalid IP false
}
