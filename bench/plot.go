package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// bar is one bar of a chart.
type bar struct {
	label string
	value float64
}

// group is a titled bar chart.
type group struct {
	title string
	unit  string
	log   bool
	bars  []bar
}

var palette = []color.RGBA{{37, 99, 235, 255}, {234, 88, 12, 255}, {22, 163, 74, 255}, {147, 51, 234, 255}, {100, 116, 139, 255}, {220, 38, 38, 255}}

// writePlot draws the charts side by side into a PNG. Bars are labelled
// with their value; log charts use a log10 scale for spread-out latencies.
func writePlot(path string, groups []group) error {
	const w, h, pad = 520, 360, 40
	img := image.NewRGBA(image.Rect(0, 0, w*len(groups), h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	for gi, g := range groups {
		x0 := gi * w
		text(img, x0+pad, 20, g.title+" ("+g.unit+")")
		top := 0.0
		for _, b := range g.bars {
			top = math.Max(top, scale(b.value, g.log))
		}
		if top == 0 {
			top = 1
		}
		slot := (w - 2*pad) / max(len(g.bars), 1)
		base := h - 70
		for i, b := range g.bars {
			height := int(scale(b.value, g.log) / top * float64(base-50))
			r := image.Rect(x0+pad+i*slot+6, base-height, x0+pad+(i+1)*slot-6, base)
			draw.Draw(img, r, image.NewUniform(palette[i%len(palette)]), image.Point{}, draw.Src)
			text(img, r.Min.X, r.Min.Y-4, label(b.value))
			text(img, r.Min.X, base+14+(i%2)*14, b.label)
		}
		draw.Draw(img, image.Rect(x0+pad, base, x0+w-pad, base+1), image.NewUniform(color.Black), image.Point{}, draw.Src)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return png.Encode(f, img)
}

func scale(v float64, log bool) float64 {
	if !log {
		return v
	}
	return math.Log10(math.Max(v, 1)) + 1
}

func text(img draw.Image, x, y int, s string) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(color.Black), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// label prints a bar's value: whole numbers from 100 up, else three
// significant digits.
func label(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}
