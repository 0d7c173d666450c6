// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/k8s-lxcfs/k8s-lxcfs/inject"
)

const (
	// PathMutate receives pods of namespaces that are not opted in; only
	// the pod annotation can opt them in.
	PathMutate = "/mutate"
	// PathNamespace receives pods of namespaces labelled
	// lxcfs.k8s.io/inject=enabled.
	PathNamespace = "/mutate-namespace"
	// MaxBody bounds a request body: the API server's own limit for an
	// object is 3 MiB, and a review wraps one object.
	MaxBody = 3 << 20
)

// Handler serves admission reviews, /healthz and /readyz.
type Handler struct {
	Options inject.Options
	Log     logr.Logger
	// Ready reports readiness (a certificate is loaded); nil means ready.
	Ready func() bool
	mux   *http.ServeMux
}

// NewHandler returns a Handler for o.
func NewHandler(log logr.Logger, o inject.Options, ready func() bool) *Handler {
	h := &Handler{Options: o, Log: log, Ready: ready, mux: http.NewServeMux()}
	h.mux.HandleFunc(PathMutate, func(w http.ResponseWriter, r *http.Request) { h.serveReview(w, r, nil) })
	h.mux.HandleFunc(PathNamespace, func(w http.ResponseWriter, r *http.Request) {
		h.serveReview(w, r, map[string]string{inject.Key: inject.Enabled})
	})
	h.mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	h.mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if h.Ready != nil && !h.Ready() {
			http.Error(w, "no serving certificate yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	return h
}

// ServeHTTP recovers from panics per request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			h.Log.Error(fmt.Errorf("panic: %v", v), "Recovered from panic in admission request", "path", r.URL.Path)
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	}()
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) serveReview(w http.ResponseWriter, r *http.Request, nsLabels map[string]string) {
	if r.Method != http.MethodPost {
		http.Error(w, "admission reviews are POSTed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("admission review larger than %d bytes", MaxBody), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	review, status, err := Review(body, nsLabels, h.Options)
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	out, err := json.Marshal(review)
	if err != nil {
		http.Error(w, "marshal response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if rsp := review.Response; rsp != nil && rsp.Patch != nil {
		h.Log.V(2).Info("Injected lxcfs mounts into pod", "uid", rsp.UID, "reason", rsp.AuditAnnotations["reason"])
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// Review answers the AdmissionReview v1 in body. nsLabels stands for the
// labels of the pod's namespace. It returns an HTTP status and an error
// only for a body that is not an AdmissionReview v1 with a request;
// everything else is an allowed response, with a JSON patch when pod gets
// mounts.
func Review(body []byte, nsLabels map[string]string, o inject.Options) (*admissionv1.AdmissionReview, int, error) {
	var in admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("malformed AdmissionReview: %w", err)
	}
	if in.Request == nil {
		return nil, http.StatusBadRequest, errors.New("malformed AdmissionReview: no request")
	}
	if in.APIVersion != "" && in.APIVersion != admissionv1.SchemeGroupVersion.String() {
		return nil, http.StatusBadRequest, fmt.Errorf("unsupported AdmissionReview version %q, want admission.k8s.io/v1", in.APIVersion)
	}
	rsp := &admissionv1.AdmissionResponse{UID: in.Request.UID, Allowed: true}
	out := &admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Response: rsp}
	req := in.Request
	if req.Kind.Kind != "Pod" || req.Kind.Group != "" || req.SubResource != "" || req.Operation != admissionv1.Create {
		rsp.AuditAnnotations = map[string]string{"reason": "not a pod create"}
		return out, http.StatusOK, nil
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		// Don't block the pod on our parsing; say why in a warning.
		rsp.Warnings = []string{"k8s-lxcfs: pod not injected: " + err.Error()}
		return out, http.StatusOK, nil
	}
	ops, reason, err := inject.Patch(&pod, nsLabels, o)
	rsp.AuditAnnotations = map[string]string{"reason": reason}
	if err != nil {
		rsp.Warnings = []string{"k8s-lxcfs: pod not injected: " + err.Error()}
		return out, http.StatusOK, nil
	}
	if len(ops) > 0 {
		patch, err := json.Marshal(ops)
		if err != nil {
			return nil, http.StatusInternalServerError, fmt.Errorf("marshal patch: %w", err)
		}
		pt := admissionv1.PatchTypeJSONPatch
		rsp.Patch, rsp.PatchType = patch, &pt
	}
	return out, http.StatusOK, nil
}
