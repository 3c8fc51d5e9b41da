package validate_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/gin-gonic/gin/binding"
	"github.com/go-playground/validator/v10"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/validate"
	"github.com/ginws/ginws/wire"
)

type Item struct {
	SKU string `json:"sku" validate:"required,alphanum"`
	Qty int    `json:"qty" validate:"min=1,max=99"`
}

type Order struct {
	Room  string            `json:"room" validate:"required,max=8"`
	Text  string            `json:"text" validate:"required,min=1,max=500"`
	Email string            `json:"email,omitempty" validate:"omitempty,email"`
	Kind  string            `json:"kind,omitempty" validate:"omitempty,oneof=a b"`
	Items []Item            `json:"items" validate:"max=3,dive"`
	Meta  map[string]string `json:"meta" validate:"dive,max=5"`
	Inner *struct {
		Level int `json:"level" validate:"gte=0,lte=10"`
	} `json:"inner,omitempty"`
}

func TestDecodeFields(t *testing.T) {
	v := validate.New(validate.Options{})
	tests := []struct {
		name    string
		payload string
		code    wire.Code
		fields  []wire.FieldError
	}{
		{"valid", `{"room":"lobby","text":"hi","items":[{"sku":"a1","qty":2}]}`, "", nil},
		{"missing required", `{"text":"hi"}`, wire.CodeValidationFailed, []wire.FieldError{
			{Field: "room", Rule: "required", Message: "room is required"}}},
		{"too long text", `{"room":"r","text":"` + strings.Repeat("x", 501) + `"}`, wire.CodeValidationFailed, []wire.FieldError{
			{Field: "text", Rule: "max", Param: "500", Message: "text must be at most 500 characters long"}}},
		{"empty text", `{"room":"r","text":""}`, wire.CodeValidationFailed, []wire.FieldError{
			{Field: "text", Rule: "required", Message: "text is required"}}},
		{"every failing field", `{"room":"much too long","email":"nope","kind":"c"}`, wire.CodeValidationFailed, []wire.FieldError{
			{Field: "room", Rule: "max", Param: "8", Message: "room must be at most 8 characters long"},
			{Field: "text", Rule: "required", Message: "text is required"},
			{Field: "email", Rule: "email", Message: "email must be a valid email address"},
			{Field: "kind", Rule: "oneof", Param: "a b", Message: "kind must be one of: a b"}}},
		{"slice index", `{"room":"r","text":"t","items":[{"sku":"a","qty":1},{"sku":"b","qty":0},{"sku":"c-d","qty":100}]}`, wire.CodeValidationFailed, []wire.FieldError{
			{Field: "items[1].qty", Rule: "min", Param: "1", Message: "items[1].qty must be at least 1"},
			{Field: "items[2].sku", Rule: "alphanum", Message: "items[2].sku must contain only letters and digits"},
			{Field: "items[2].qty", Rule: "max", Param: "99", Message: "items[2].qty must be at most 99"}}},
		{"slice length", `{"room":"r","text":"t","items":[{"sku":"a","qty":1},{"sku":"a","qty":1},{"sku":"a","qty":1},{"sku":"a","qty":1}]}`, wire.CodeValidationFailed, []wire.FieldError{
			{Field: "items", Rule: "max", Param: "3", Message: "items must have at most 3 items"}}},
		{"map key", `{"room":"r","text":"t","meta":{"color":"ultraviolet"}}`, wire.CodeValidationFailed, []wire.FieldError{
			{Field: "meta[color]", Rule: "max", Param: "5", Message: "meta[color] must be at most 5 characters long"}}},
		{"nested pointer", `{"room":"r","text":"t","inner":{"level":11}}`, wire.CodeValidationFailed, []wire.FieldError{
			{Field: "inner.level", Rule: "lte", Param: "10", Message: "inner.level must be at most 10"}}},
		{"type mismatch", `{"room":"r","text":"t","items":[{"sku":"a","qty":1},{"sku":"b","qty":"x"}]}`, wire.CodeBadRequest, []wire.FieldError{
			{Field: "items[1].qty", Rule: "type", Param: "int", Message: "items[1].qty must be an integer, not string"}}},
		{"top-level mismatch", `[1,2]`, wire.CodeBadRequest, nil},
		{"not JSON", `{"room":`, wire.CodeBadRequest, nil},
		{"trailing garbage", `{"room":"r","text":"t"} x`, wire.CodeBadRequest, nil},
		{"empty payload", ``, wire.CodeValidationFailed, []wire.FieldError{
			{Field: "room", Rule: "required", Message: "room is required"},
			{Field: "text", Rule: "required", Message: "text is required"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := validate.Decode[Order](v, []byte(tt.payload))
			if tt.code == "" {
				require.NoError(t, err)
				assert.Equal(t, "lobby", got.Room)
				return
			}
			var verr *validate.Error
			require.ErrorAs(t, err, &verr)
			assert.Equal(t, tt.code, verr.Code)
			assert.Equal(t, tt.fields, verr.Fields)
			assert.Equal(t, Order{}, got, "a failed decode returns the zero value")
		})
	}
}

func TestLimits(t *testing.T) {
	deep := strings.Repeat("[", 33) + strings.Repeat("]", 33)
	t.Run("depth default 32", func(t *testing.T) {
		v := validate.New(validate.Options{})
		_, err := validate.Decode[any](v, []byte(deep))
		assert.ErrorIs(t, err, validate.ErrTooDeep)
		var verr *validate.Error
		require.ErrorAs(t, err, &verr)
		assert.Equal(t, wire.CodeBadRequest, verr.Code)
		_, err = validate.Decode[any](v, []byte(deep[1:len(deep)-1]))
		assert.NoError(t, err, "exactly 32 levels pass")
	})
	t.Run("brackets inside strings do not count", func(t *testing.T) {
		v := validate.New(validate.Options{MaxDepth: 2})
		_, err := validate.Decode[any](v, []byte(`{"a":"[[[[\"{{{{"}`))
		assert.NoError(t, err)
	})
	t.Run("depth 10000 within the size limit", func(t *testing.T) {
		v := validate.New(validate.Options{})
		_, err := validate.Decode[any](v, []byte(strings.Repeat("[", 10000)+strings.Repeat("]", 10000)))
		assert.ErrorIs(t, err, validate.ErrTooDeep)
	})
	t.Run("size", func(t *testing.T) {
		v := validate.New(validate.Options{MaxBytes: 16})
		_, err := validate.Decode[any](v, []byte(`"0123456789abcd"`))
		assert.NoError(t, err, "exactly the limit passes")
		_, err = validate.Decode[any](v, []byte(`"0123456789abcde"`))
		assert.ErrorIs(t, err, validate.ErrTooLarge)
		var verr *validate.Error
		require.ErrorAs(t, err, &verr)
		assert.Equal(t, wire.CodeTooLarge, verr.Code)
	})
	t.Run("configurable depth", func(t *testing.T) {
		v := validate.New(validate.Options{MaxDepth: 2})
		_, err := validate.Decode[any](v, []byte(`{"a":{"b":{}}}`))
		assert.ErrorIs(t, err, validate.ErrTooDeep)
	})
}

func TestUnknownFieldsPerInstance(t *testing.T) {
	strict := validate.New(validate.Options{DisallowUnknownFields: true})
	lax := validate.New(validate.Options{})
	payload := []byte(`{"room":"r","text":"t","colour":"red"}`)

	_, err := validate.Decode[Order](strict, payload)
	var verr *validate.Error
	require.ErrorAs(t, err, &verr)
	assert.Equal(t, wire.CodeBadRequest, verr.Code)
	assert.Equal(t, []wire.FieldError{{Field: "colour", Rule: "unknown", Message: "colour is not a known field"}}, verr.Fields)

	_, err = validate.Decode[Order](lax, payload)
	assert.NoError(t, err, "the strict instance does not change the other one")

	_, err = validate.Decode[Order](strict, []byte(`{"room":"r","text":"t"} {}`))
	assert.ErrorIs(t, err, validate.ErrMalformed)
}

// GinRequest carries one set of binding tags for both Gin and ginws.
type GinRequest struct {
	Name  string `json:"name" binding:"required,max=5"`
	Color string `json:"color" binding:"required,primary"`
}

func TestSharesGinEngineAndTags(t *testing.T) {
	gin.SetMode(gin.TestMode)
	engine, ok := binding.Validator.Engine().(*validator.Validate)
	require.True(t, ok)
	require.NoError(t, engine.RegisterValidation("primary", func(fl validator.FieldLevel) bool {
		s := fl.Field().String()
		return s == "red" || s == "green" || s == "blue"
	}))

	r := gin.New()
	r.POST("/bind", func(c *gin.Context) {
		var req GinRequest
		if err := c.ShouldBindJSON(&req); err != nil {
			c.String(http.StatusBadRequest, "rejected")
			return
		}
		c.String(http.StatusOK, "ok")
	})
	gv := validate.New(validate.Options{Engine: engine, Message: func(fe validator.FieldError, field string) string {
		if fe.Tag() == "primary" {
			return field + " must be a primary colour"
		}
		return ""
	}})

	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"name":"ann","color":"red"}`, true},
		{`{"name":"ann","color":"pink"}`, false},
		{`{"name":"annabel","color":"red"}`, false},
	} {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/bind", bytes.NewBufferString(tc.body)))
		_, err := validate.Decode[GinRequest](gv, []byte(tc.body))
		assert.Equal(t, tc.ok, w.Code == http.StatusOK, "gin: %s", tc.body)
		assert.Equal(t, tc.ok, err == nil, "ginws: %s", tc.body)
	}

	_, err := validate.Decode[GinRequest](gv, []byte(`{"name":"ann","color":"pink"}`))
	var verr *validate.Error
	require.ErrorAs(t, err, &verr)
	assert.Equal(t, []wire.FieldError{{Field: "color", Rule: "primary", Message: "color must be a primary colour"}}, verr.Fields)

	// The same struct with the tag name option instead of Gin's engine.
	byTag := validate.New(validate.Options{TagName: "binding"})
	_, err = validate.Decode[struct {
		Name string `json:"name" binding:"required,max=5"`
	}](byTag, []byte(`{"name":"annabel"}`))
	require.ErrorAs(t, err, &verr)
	assert.Equal(t, "name must be at most 5 characters long", verr.Fields[0].Message)
}

func TestCustomRules(t *testing.T) {
	type Msg struct {
		Room string `json:"room" validate:"room"`
		From int    `json:"from"`
		To   int    `json:"to"`
	}
	v := validate.New(validate.Options{})
	require.NoError(t, v.RegisterRule("room", func(fl validator.FieldLevel) bool {
		return strings.HasPrefix(fl.Field().String(), "room:")
	}, "{field} must start with room:"))
	require.NoError(t, v.RegisterStructRule(func(sl validator.StructLevel) {
		m := sl.Current().Interface().(Msg)
		if m.To < m.From {
			sl.ReportError(m.To, "To", "To", "gtefield", "From")
		}
	}, Msg{}))

	_, err := validate.Decode[Msg](v, []byte(`{"room":"lobby","from":5,"to":1}`))
	var verr *validate.Error
	require.ErrorAs(t, err, &verr)
	assert.Equal(t, []wire.FieldError{
		{Field: "room", Rule: "room", Message: "room must start with room:"},
		{Field: "to", Rule: "gtefield", Param: "From", Message: "to failed the rule gtefield=From"},
	}, verr.Fields)

	assert.ErrorIs(t, v.RegisterRule("late", func(validator.FieldLevel) bool { return true }, ""), validate.ErrRegisterAfterUse)
	assert.ErrorIs(t, v.RegisterStructRule(func(validator.StructLevel) {}, Msg{}), validate.ErrRegisterAfterUse)
}

func TestConcurrentUse(t *testing.T) {
	v := validate.New(validate.Options{})
	done := make(chan error, 8)
	for i := range 8 {
		go func() {
			var err error
			for range 200 {
				if i%2 == 0 {
					_, err = validate.Decode[Order](v, []byte(`{"room":"r","text":"t"}`))
				} else if _, e := validate.Decode[Order](v, []byte(`{"room":"r"}`)); !errors.Is(e, validate.ErrInvalid) {
					err = e
				}
				if err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 8 {
		assert.NoError(t, <-done)
	}
}

func TestErrorString(t *testing.T) {
	_, err := validate.Decode[Order](validate.New(validate.Options{}), []byte(`{"room":"r"}`))
	assert.EqualError(t, err, "validate: text is required")
}
