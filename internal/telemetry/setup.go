// Package telemetry is wirelog's OpenTelemetry tracing: the tracer provider
// configured from the standard OTEL_* environment variables and the
// --otlp-traces flag, and the small hooks the hot paths call (a server span
// per HTTP request, a span per durable append, a span per stored batch that
// links to the producer spans of its records, exemplars on histograms).
//
// Tracing is off unless an OTLP endpoint is configured. While off, every hook
// returns at its first check (one atomic load) and nothing is allocated,
// injected into records or exported, so the default costs nothing measurable
// (BenchmarkHooksOff).
package telemetry

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/credentials"
)

// Defaults and names.
const (
	// ScopeName is the instrumentation scope of every wirelog span.
	ScopeName = "github.com/wirelog/wirelog"
	// TracesPath is appended to an --otlp-traces URL given without a path,
	// as the OTLP/HTTP spec does for OTEL_EXPORTER_OTLP_ENDPOINT.
	TracesPath = "/v1/traces"
	// FlagName is the flag that turns tracing on without environment variables.
	FlagName = "otlp-traces"
)

// Config is what the command line adds to the OTEL_* environment.
type Config struct {
	// Endpoint is --otlp-traces: an OTLP/HTTP base URL (http://collector:4318)
	// or a full traces URL (…/v1/traces). It overrides
	// OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT. Empty = the environment decides.
	Endpoint string
	// ServiceName is service.name unless OTEL_SERVICE_NAME or
	// OTEL_RESOURCE_ATTRIBUTES set one.
	ServiceName string
	// TLS, when set, is the exporter's client TLS configuration (it
	// overrides OTEL_EXPORTER_OTLP_CERTIFICATE and friends).
	TLS *tls.Config
}

// RegisterFlags adds --otlp-traces to fs.
func RegisterFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.Endpoint, FlagName, "", "export traces over OTLP/HTTP to this `URL` (e.g. http://127.0.0.1:4318 for Jaeger or an OTel Collector); "+
		"empty = the standard OTEL_EXPORTER_OTLP_* variables decide, and without them tracing is off. "+
		"Sampling, headers and resource come from OTEL_TRACES_SAMPLER[_ARG], OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES (docs/OPERATIONS.md)")
}

// enabled is read by every hook; the tracer is only used once it is true.
var (
	enabled atomic.Bool
	tracer  trace.Tracer = noop.NewTracerProvider().Tracer(ScopeName)
)

// Enabled reports whether spans are being recorded and exported.
func Enabled() bool { return enabled.Load() }

// Shutdown flushes and stops the exporter.
type Shutdown func(context.Context) error

// Setup configures tracing for the process from cfg and the environment and
// installs the global tracer provider and W3C propagator. Tracing is on when
// cfg.Endpoint, OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (or OTEL_TRACES_EXPORTER=otlp),
// and off when OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. The
// returned Shutdown flushes the spans still queued; call it on exit.
func Setup(ctx context.Context, cfg Config, log *slog.Logger) (Shutdown, error) {
	on, why := wanted(cfg)
	if !on {
		log.Debug("tracing off", "why", why)
		return func(context.Context) error { return nil }, nil
	}
	exp, target, err := newExporter(ctx, cfg)
	if err != nil {
		return nil, err
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(cfg.ServiceName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES override the default
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing resource (check OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	// The sampler comes from OTEL_TRACES_SAMPLER / _ARG (default
	// parentbased_always_on), made link-aware (sampler.go); batching from
	// OTEL_BSP_*.
	sampler, err := samplerFromEnv()
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(linkSampler{sampler}))
	install(tp)
	log.Info("tracing on", "otlp", target, "service", serviceName(res), "sampler", samplerDesc())
	return func(ctx context.Context) error {
		enabled.Store(false)
		return tp.Shutdown(ctx)
	}, nil
}

// install makes tp the provider every hook and the global API use.
func install(tp trace.TracerProvider) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	otel.SetTracerProvider(tp)
	tracer = tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL))
	enabled.Store(true)
}

// wanted decides whether tracing is on, and says why.
func wanted(cfg Config) (bool, string) {
	if v := strings.ToLower(os.Getenv("OTEL_SDK_DISABLED")); v == "true" {
		return false, "OTEL_SDK_DISABLED=true"
	}
	switch v := strings.ToLower(os.Getenv("OTEL_TRACES_EXPORTER")); v {
	case "none":
		return false, "OTEL_TRACES_EXPORTER=none"
	case "otlp":
		return true, "OTEL_TRACES_EXPORTER=otlp"
	}
	if cfg.Endpoint != "" {
		return true, "--" + FlagName
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if os.Getenv(k) != "" {
			return true, k
		}
	}
	return false, "no --" + FlagName + " and no OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT"
}

// newExporter builds the OTLP exporter for the protocol OTEL_EXPORTER_OTLP_
// [TRACES_]PROTOCOL names (http/protobuf by default, http/json, grpc).
func newExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, string, error) {
	proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var endpoint string
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, "", fmt.Errorf("--%s %q: want an http:// or https:// URL such as http://127.0.0.1:4318", FlagName, cfg.Endpoint)
		}
		if proto != "grpc" && (u.Path == "" || u.Path == "/") {
			u.Path = TracesPath
		}
		endpoint = u.String()
	}
	switch proto {
	case "", "http/protobuf", "http/json":
		var opts []otlptracehttp.Option
		if endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
		}
		if cfg.TLS != nil {
			opts = append(opts, otlptracehttp.WithTLSClientConfig(cfg.TLS))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, "", fmt.Errorf("OTLP/HTTP trace exporter (--%s, OTEL_EXPORTER_OTLP_*): %w", FlagName, err)
		}
		return exp, target(endpoint, "OTLP/HTTP"), nil
	case "grpc":
		var opts []otlptracegrpc.Option
		if endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
		}
		if cfg.TLS != nil {
			opts = append(opts, otlptracegrpc.WithTLSCredentials(credentialsFromTLS(cfg.TLS)))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, "", fmt.Errorf("OTLP/gRPC trace exporter (--%s, OTEL_EXPORTER_OTLP_*): %w", FlagName, err)
		}
		return exp, target(endpoint, "OTLP/gRPC"), nil
	default:
		return nil, "", fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: wirelog exports http/protobuf, http/json or grpc", proto)
	}
}

func target(endpoint, proto string) string {
	if endpoint != "" {
		return proto + " " + endpoint
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if v := os.Getenv(k); v != "" {
			return proto + " " + v + " (" + k + ")"
		}
	}
	return proto + " default endpoint"
}

func serviceName(res *resource.Resource) string {
	v, _ := res.Set().Value(semconv.ServiceNameKey)
	return v.AsString()
}

func samplerDesc() string {
	s := os.Getenv("OTEL_TRACES_SAMPLER")
	if s == "" {
		return "parentbased_always_on (OTEL_TRACES_SAMPLER unset)"
	}
	if a := os.Getenv("OTEL_TRACES_SAMPLER_ARG"); a != "" {
		return s + " " + a
	}
	return s
}

func credentialsFromTLS(c *tls.Config) credentials.TransportCredentials { return credentials.NewTLS(c) }
